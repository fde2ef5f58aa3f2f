import hashlib

import pytest

from core.report_manifest import (
    ALGORITHM, EMPTY_ROOT, Entry, Manifest, ManifestBuilder, MerkleStream, PackedEntries, PackedManifestBuilder,
    build_manifest, check_records, digest_slices, key_slices, merge_packed, merkle_root, pack, packed_chunks,
    root_matches,
)


def h(*parts: bytes) -> str:
    return hashlib.sha256(b"".join(parts)).hexdigest()


a, b, c = (h(bytes([i])) for i in range(3))
A, B, C = (bytes.fromhex(x) for x in (a, b, c))


@pytest.mark.parametrize("leaves, root", [
    ([], EMPTY_ROOT),
    ([a], a),
    ([a, b], h(b"\x01", A, B)),
    ([a, b, c], h(b"\x01", bytes.fromhex(h(b"\x01", A, B)), C)),  # the odd leaf is carried up
])
def test_merkle_root(leaves, root):
    assert merkle_root(leaves) == root


def _levels(digests: list[str]) -> str:
    """The tree as the definition says it, level by level (what the one-pass stream must equal)."""
    level = [bytes.fromhex(d) for d in digests]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


@pytest.mark.parametrize("n", [*range(0, 40), 63, 64, 65, 100, 127, 128, 129, 1000])
def test_streamed_root_is_the_level_by_level_root(n):
    leaves = [h(n.to_bytes(4, "big"), i.to_bytes(4, "big")) for i in range(n)]
    assert merkle_root(leaves) == _levels(leaves)


def _d(i: int) -> str:
    return h(bytes([i]))


def test_order_matters_for_the_root_but_not_for_the_manifest():
    assert merkle_root([a, b]) != merkle_root([b, a])
    r1, r2 = ("01" * 16, "02" * 8, _d(1)), ("01" * 16, "00" * 8, _d(2))
    assert build_manifest([r1, r2]).root == build_manifest([r2, r1]).root


@pytest.mark.parametrize("second", [("01" * 16, "02" * 8), ("01" * 16, "01" * 8), ("00" * 16, "ff" * 8)])
def test_builder_refuses_records_out_of_order_or_repeated(second):
    builder = ManifestBuilder(lambda e: None)
    builder.add("01" * 16, "02" * 8, _d(1))
    with pytest.raises(ValueError, match="increasing"):
        builder.add(*second, _d(2))


def test_builder_streams_entries_to_its_sink():
    seen: list[Entry] = []
    builder = ManifestBuilder(seen.append)
    for i in range(5):
        builder.add("01" * 16, f"{i:016x}", _d(i))
    manifest = builder.finish(seen)
    assert manifest.count == 5 and [e.digest for e in seen] == [_d(i) for i in range(5)]
    assert manifest.root == merkle_root([_d(i) for i in range(5)]) and root_matches(manifest)
    assert manifest.first(2) == tuple(seen[:2])


def test_check_records_and_roundtrip():
    k1, k2 = ("01" * 16, "02" * 8), ("01" * 16, "00" * 8)
    m = Manifest.from_dict(build_manifest([(*k1, _d(1)), (*k2, _d(2))]).to_dict())
    assert root_matches(m) and m.count == 2
    assert [c.outcome for c in check_records(m, {k1: _d(9)})] == ["missing", "changed"]
    assert [c.outcome for c in check_records(m, {k1: _d(1), k2: _d(2)})] == ["ok", "ok"]
    assert not root_matches(Manifest(m.algorithm, tuple(m.entries)[:1], m.root))
    assert not root_matches(Manifest(m.algorithm, m.entries, m.root, count=3))  # a count that lies


@pytest.mark.parametrize("n, chunks", [(0, [0]), (1, [1]), (5, [2, 3]), (4096, [4096]), (5000, [8192]),
                                       (9000, [1, 4095, 4096, 808]), (9000, [3000, 3000, 3000]),
                                       (12289, [8192, 4097])])
def test_extend_folds_the_same_tree_as_adding_one_by_one(n, chunks):
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    tree, i = MerkleStream(), 0
    for size in chunks:
        tree.extend(leaves[i:i + size])
        i += size
    assert tree.root() == merkle_root([leaf.hex() for leaf in leaves]) == _levels([leaf.hex() for leaf in leaves])


def _row(i: int) -> tuple[bytes, bytes, bytes]:
    return bytes(15) + bytes([i // 256]), (i % 256).to_bytes(8, "big"), bytes.fromhex(_d(i % 256))


def _packed(rows) -> bytes:
    return b"".join(t + s + d for t, s, d in rows)


def test_packed_builder_equals_the_hex_builder_and_unpacks():
    rows = [_row(i) for i in range(600)]
    written: list[bytes] = []
    packed = PackedManifestBuilder(written.append)
    packed.extend(_packed(rows[:250]))
    packed.extend(_packed(rows[250:]))
    entries = PackedEntries(b"".join(written))
    manifest = packed.finish(entries)
    expected = build_manifest([(t.hex(), s.hex(), d.hex()) for t, s, d in rows])
    assert (manifest.root, manifest.count, manifest.algorithm) == (expected.root, 600, ALGORITHM)
    assert list(entries) == list(expected.entries) and len(entries) == 600 and root_matches(manifest)
    truncated = PackedEntries(b"".join(written)[:-1])
    assert not root_matches(Manifest(ALGORITHM, truncated, manifest.root, 600))
    assert pack(expected.entries) == b"".join(written)
    assert key_slices(b"".join(written))[1] == rows[1][0] + rows[1][1]
    assert digest_slices(b"".join(written))[599] == rows[599][2]


@pytest.mark.parametrize("rows", [
    [_row(2), _row(1)],  # out of order
    [_row(1), _row(1)],  # repeated
])
def test_packed_builder_refuses(rows):
    with pytest.raises(ValueError):
        PackedManifestBuilder(lambda b: None).extend(_packed(rows))


def test_packed_builder_refuses_a_partial_record():
    with pytest.raises(ValueError, match="whole records"):
        PackedManifestBuilder(lambda b: None).extend(_packed([_row(1)])[:-1])


def test_packed_builder_refuses_a_chunk_that_goes_back():
    builder = PackedManifestBuilder(lambda b: None)
    builder.extend(_packed([_row(5)]))
    with pytest.raises(ValueError, match="increasing"):
        builder.extend(_packed([_row(4)]))


def _entry(i: int, digest: int | None = None) -> bytes:
    t, s, d = _row(i)
    return t + s + (d if digest is None else bytes.fromhex(_d(digest)))


def _merged(manifest: list[bytes], stored: list[bytes], chunk: int = 3) -> list:
    """merge_packed's answer with both sides cut in chunks of `chunk` entries, runs of ok summed."""
    def chunks(entries):
        return [b"".join(entries[i:i + chunk]) for i in range(0, len(entries), chunk)]
    found: list = []
    for kind, value in merge_packed(chunks(manifest), chunks(stored)):
        if kind == "ok" and found and found[-1][0] == "ok":
            found[-1] = ("ok", found[-1][1] + value)
        else:
            found.append((kind, value if kind == "ok" else bytes(value)))
    return found


E = [_entry(i) for i in range(20)]


@pytest.mark.parametrize("manifest, stored, expected", [
    (E, E, [("ok", 20)]),
    ([], [], []),
    (E, E[:5] + [_entry(5, 99)] + E[6:], [("ok", 5), ("changed", E[5]), ("ok", 14)]),
    (E, E[:7] + E[8:], [("ok", 7), ("unmatched", E[7]), ("ok", 12)]),  # deleted, or moved out of the window
    (E[:7] + E[8:], E, [("ok", 7), ("extra", E[7][:24]), ("ok", 12)]),  # stored after the report
    (E, [], [("unmatched", e) for e in E]),
    ([], E[:2], [("extra", E[0][:24]), ("extra", E[1][:24])]),
    (E[:3], E[:2], [("ok", 2), ("unmatched", E[2])]),
    # Out of order: E0 is passed over on the stored side and left for a look-up by key.
    ([E[1], E[0]] + E[2:4], E[:4], [("extra", E[0][:24]), ("ok", 1), ("unmatched", E[0]), ("ok", 2)]),
])
def test_merge_packed(manifest, stored, expected):
    assert _merged(manifest, stored) == expected
    assert _merged(manifest, stored, chunk=7) == expected


def test_merge_packed_finds_each_difference_in_long_runs(monkeypatch):
    import core.report_manifest as m

    monkeypatch.setattr(m, "MERGE_RUN", 8)
    many = [_entry(i) for i in range(300)]
    stored = [e if i % 37 else _entry(i, 7) for i, e in enumerate(many)]
    found = _merged(many, stored, chunk=50)
    assert [v for k, v in found if k == "changed"] == [e for i, e in enumerate(many) if i % 37 == 0]
    assert sum(v for k, v in found if k == "ok") == 300 - 9


def test_packed_chunks_of_hex_and_packed_entries():
    manifest = build_manifest([(t.hex(), s.hex(), d.hex()) for t, s, d in map(_row, range(10))])
    packed = b"".join(packed_chunks(manifest.entries, 4))
    assert packed == b"".join(_entry(i) for i in range(10))
    chunks = [bytes(c) for c in packed_chunks(PackedEntries(packed + b"x"), 4)]
    assert chunks == [packed[:224], packed[224:448], packed[448:]]
    with pytest.raises(ValueError):
        list(packed_chunks((Entry("ab", "cd", "ef"),)))
