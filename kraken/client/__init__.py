"""``kraken client``: the command-line client for people and scripts.  It talks to a Kraken
server over its REST API only (no server code is imported), with a stored or given token."""
