"""The only I/O in shared/: DynamoDB (pynamodb), upstream HTTP (httpx), encryption."""
