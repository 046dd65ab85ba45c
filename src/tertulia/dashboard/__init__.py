"""What staff see: the program dashboard, its figures (retention, engagement by topic) and the
HTML report the demo writes. Reads only; it changes nothing."""
