"""Sessions to PostgreSQL: targets, the bounded async session, and pg_dump."""
