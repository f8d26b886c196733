"""Bulk runs that survive a crash (vision_grpc.bulk) against the real emulator, in-process and killed."""
