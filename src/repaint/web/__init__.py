"""The browser app behind `repaint serve` (optional extra `web`)."""
