"""DynamoDB adapters. Persistence models stay here; callers get domain dataclasses."""
