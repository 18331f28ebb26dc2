"""docpipe's built-in schemas: plain pydantic models, one document type per module, no docpipe imports.

Installed as ``docpipe.builtin_schemas``. Field descriptions are what a model is told, so write them for a reader.
Each module exposes its model as ``SCHEMA``.
"""
