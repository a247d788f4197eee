"""Scheduled jobs (token refresh, usage rollup, quota poll): one small module per job, arriving with their issues."""
