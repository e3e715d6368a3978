"""Object detection over lake photos: what is in the sellers' pictures."""
