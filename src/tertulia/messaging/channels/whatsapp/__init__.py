"""WhatsApp Business Cloud API: request signing, webhook parsing, the error table, a thin HTTP
client and a local fake server that speaks the same HTTP and JSON.

Nothing here imports Django: the channel's models, views and sender build on these pieces, and
the fake server runs in tests and benchmarks without a database."""
