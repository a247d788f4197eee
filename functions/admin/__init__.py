"""The /api admin app (behind Mangum and IAM in the cloud; bearer admin token locally)."""
