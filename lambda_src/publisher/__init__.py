"""Publisher Lambda: the window table's stream to Security Hub findings (see ``publisher.handler``)."""
