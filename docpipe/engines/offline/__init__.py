"""The offline engine: PDF text layer, OCR, embedded e-invoice XML and rules, on a plain CPU."""
