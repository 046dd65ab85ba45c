"""Randomized assignment of Participants to the arms of a Trial, and what follows from it.

This app owns:
- the Trial's randomization config (arms with allocation ratios, strata, block sizes, seed), read
  from a YAML file (`config.py`, pure Python, no Django);
- stratified block randomization that can be reproduced from the recorded seed (`blocks.py`);
- the append-only assignment log (`Assignment`, plus `AssignmentRelease` which makes an
  assignment final) and `services.assignment_make`, safe under concurrent enrolments;
- concealment: no staff screen shows an arm before its assignment is final (`admin.py`);
- forming Cohorts of program-arm men by send time and region (`formation.py`, pure; and
  `services.cohorts_form`), and the waitlist selector (`selectors.py`);
- the recruitment funnel's statistics (`funnel_stats.py`, pure functions).

It takes plain inputs (a Participant and his strata as text), so screening and consent, which
live in the recruitment app, call it without this app knowing about them.
"""
