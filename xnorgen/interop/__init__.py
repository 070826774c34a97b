"""Other formats in and out: ONNX / QONNX import (onnx_import) and ONNX export (onnx_export)."""
