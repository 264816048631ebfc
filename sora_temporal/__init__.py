"""sora-temporal: durable text-to-video jobs over the OpenAI Videos protocol."""
