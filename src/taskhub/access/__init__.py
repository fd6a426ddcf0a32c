"""Who may see or do what: the roles table (`roles`), the conditions every statement starts from
(`scope`), the answers given before a write (`rules`) and what leaving does (`leaving`). Domain
packages ask here and never each other."""
