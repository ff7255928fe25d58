"""The actor kernel: mailboxes, actor refs, ask/tell, supervisor, reminders (issue 3)."""
