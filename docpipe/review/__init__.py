"""The review page (``docpipe review``): documents, page images with each value's box, confidence, corrections."""
