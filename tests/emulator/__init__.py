"""Tests of the local emulator (vision_grpc.emulator, vision_grpc.testing), over real gRPC."""
