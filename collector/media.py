"""The media types OTLP/HTTP accepts. Apart from collector/body.py (which reads requests with
Starlette) so that the decoder worker processes, which need only these names, do not import it."""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
