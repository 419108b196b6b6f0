"""celltosg."""
