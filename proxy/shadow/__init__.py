"""Shadow readiness: would the new provider, as imported, accept this connection's live logins?"""
