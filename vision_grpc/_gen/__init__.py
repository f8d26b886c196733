"""Generated protobuf modules. Do not edit; see scripts/gen_protos.py."""
