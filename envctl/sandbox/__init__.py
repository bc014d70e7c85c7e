"""The local sandbox: moto's server app on loopback, so envctl runs with no AWS account."""
