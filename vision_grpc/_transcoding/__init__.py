"""gRPC transcoding (``google.api.http``): request messages to HTTP and back, both sides.

- ``template``: the values of parsed path templates (segments, variables, ``Template``);
- ``parse``: the path template parser, ``parse(text) -> Template`` (cached);
- ``match``: expansion (client) and matching with percent-decoding (server), ``matcher(template)``;
- ``fields``: HttpRule bindings and descriptor helpers shared by both sides;
- ``client``: ``to_http``, ``decode_response`` (and ``encode_response``, the same JSON rules);
- ``jsonpb``: JSON to and from messages by walks precompiled per message type (``json_format``'s results,
  faster), with msgspec's decoder when the ``fast`` extra is installed;
- ``server``: ``Router``, an HTTP request to a method key and its request message.

Other packages import from here; inside, ``client`` and ``server`` never import each other.
"""

from vision_grpc._transcoding.client import HttpRequest, decode_response, encode_response, to_http
from vision_grpc._transcoding.fields import Binding
from vision_grpc._transcoding.match import TemplateMatcher, VariableMatcher, matcher
from vision_grpc._transcoding.parse import parse
from vision_grpc._transcoding.server import SYSTEM_PARAMETERS, Router
from vision_grpc._transcoding.template import DoubleWildcard, Literal, Template, Variable, Wildcard

__all__ = [
    "SYSTEM_PARAMETERS",
    "Binding",
    "DoubleWildcard",
    "HttpRequest",
    "Literal",
    "Router",
    "Template",
    "TemplateMatcher",
    "Variable",
    "VariableMatcher",
    "Wildcard",
    "decode_response",
    "encode_response",
    "matcher",
    "parse",
    "to_http",
]
