"""The simple repository API from the client side: the one HTTP client for simple pages
(``client``), parsing PEP 503 HTML and PEP 691 JSON pages into candidates (``pages``), and
reading one member of a remote zip by byte ranges (``zipmember``). Used by the build's
upstream, the server's fall-through and publishing alike."""
