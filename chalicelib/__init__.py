"""What the Lambda function runs: model store, engines, request schema, errors."""
