"""Fakes of other people's servers, spoken to over real HTTP so the real client libraries run."""
