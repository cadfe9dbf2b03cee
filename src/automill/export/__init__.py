"""Edge exports of trained models (TF Lite, ONNX) with parity checks: see export/edge.py."""
