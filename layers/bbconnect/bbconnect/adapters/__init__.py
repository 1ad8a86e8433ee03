"""AWS adapters: the only part of the package that talks to boto3, files and sockets."""
