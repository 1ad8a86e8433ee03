"""The hostile-input suite: bad batch files and rows, hostile attachments and hostile inbound XML,
generated in code (`corpus`), each with the specific error it must get."""
