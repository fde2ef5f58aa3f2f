"""Request bodies: every gzip member is read, trailing garbage is refused, caps hold across members."""

from __future__ import annotations

import gzip
import zlib

import pytest

from collector.body import BodyError, inflate
from tests import otlp_payloads as P
from tests.collector.test_ingest_http import count, post, simple_trace, status_message

A, B = b"a" * 1000, b"b" * 500


def test_concatenated_gzip_members_are_all_read():
    assert inflate(gzip.compress(A) + gzip.compress(B), "gzip", 10_000) == A + B
    assert inflate(gzip.compress(A) + b"\x00" * 8, "gzip", 10_000) == A  # NUL padding, as gzip(1) allows


@pytest.mark.parametrize("body,encoding,message", [
    (gzip.compress(A) + b"junk", "gzip", "4 bytes of trailing garbage after member 1"),
    (gzip.compress(A) + gzip.compress(B)[:-3], "gzip", "gzip member 2 body is truncated"),
    (zlib.compress(A) + b"junk", "deflate", "deflate body has 4 bytes of trailing garbage"),
], ids=["gzip-garbage", "gzip-truncated-member", "deflate-garbage"])
def test_trailing_garbage_and_truncated_members_are_400(body, encoding, message):
    with pytest.raises(BodyError) as caught:
        inflate(body, encoding, 10_000)
    assert caught.value.status == 400 and message in caught.value.message


def test_the_output_cap_covers_all_members():
    with pytest.raises(BodyError) as caught:
        inflate(gzip.compress(A) + gzip.compress(B), "gzip", 1200)
    assert caught.value.status == 413 and "1200-byte limit" in caught.value.message
    assert len(inflate(gzip.compress(A) + gzip.compress(B), "gzip", 1500)) == 1500


def test_two_gzip_members_over_http_store_every_span(collector):
    tid1, first = simple_trace(2)
    tid2, second = simple_trace(3)
    body = gzip.compress(P.request(first).SerializeToString()) + gzip.compress(P.request(second).SerializeToString())
    response = post(collector, body, {"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    # Two serialized requests concatenated are one protobuf message with both resource_spans.
    assert count(collector, "select count(*) from spans where trace_id in (:a, :b)", a=tid1, b=tid2) == 5
    garbage = post(collector, gzip.compress(P.request(first).SerializeToString()) + b"xx", {"content-encoding": "gzip"})
    assert garbage.status_code == 400 and "trailing garbage" in status_message(garbage)
