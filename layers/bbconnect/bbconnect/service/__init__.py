"""The stages of a batch: domain logic wired to the AWS adapters. Handlers call one function here."""
