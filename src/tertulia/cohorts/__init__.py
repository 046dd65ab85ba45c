"""People in a program: Participants (with their personal data encrypted), Cohorts of about 50
men with their facilitator, and Enrollments that tie a participant to a cohort."""
