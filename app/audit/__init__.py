"""The money audit: every invariant of ARCHITECTURE §5 checked against one snapshot."""
