"""IAM as AWS applies it, for the local run: the deployed roles (`roles`), the policy evaluation
(`policy`), API calls as IAM requests (`requests`) and the enforcement in the running process
(`enforcer`)."""
