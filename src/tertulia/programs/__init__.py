"""Programs and their content: Program, Curriculum versions, Days, Topics and Steps, and the
curriculum files they are linted and imported from."""
