"""The codewatch console command."""
