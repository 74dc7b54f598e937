-- The database that sql.query reads in the compose stack, and the least-privilege role the
-- worker-sql service logs in as (SQL_TARGET_URL in docker/compose.yml). Never the product's own
-- database (tasks): user-written SQL runs here.
--
-- The postgres image runs the files of /docker-entrypoint-initdb.d (this folder, mounted
-- read-only) once, as the superuser, when the data volume is empty. On an existing volume, run it
-- by hand once: psql -h 127.0.0.1 -U postgres -d tasks -f docker/postgres/initdb/10-sql-target.sql
--
-- appdb, owned by app_owner (a role that cannot log in), with readable tables in schema
-- reporting: the names of the README's recipe ("### sql.query and the SQL target"), which is
-- copied unchanged below (tools/repo-checks/src/deployment-files.spec.ts checks it).

\set ON_ERROR_STOP on

CREATE ROLE app_owner NOLOGIN;
CREATE DATABASE appdb OWNER app_owner;

\connect appdb

CREATE SCHEMA reporting AUTHORIZATION app_owner;

-- Sample data, created by its owner so the default privileges below apply to tables added later.
SET ROLE app_owner;
CREATE TABLE reporting.daily (day date PRIMARY KEY, orders integer NOT NULL, revenue numeric(12, 2) NOT NULL);
INSERT INTO reporting.daily (day, orders, revenue)
SELECT d::date, 20 + (extract(doy FROM d)::int * 7) % 31, round((500 + (extract(doy FROM d)::int * 37) % 900)::numeric, 2)
  FROM generate_series(date '2024-01-01', date '2024-03-31', interval '1 day') AS d;
CREATE TABLE reporting.customers (id integer PRIMARY KEY, name text NOT NULL, country text NOT NULL);
INSERT INTO reporting.customers (id, name, country)
SELECT i, 'customer ' || i, (ARRAY['DE', 'FR', 'NL', 'US', 'JP'])[1 + i % 5] FROM generate_series(1, 50) AS i;
RESET ROLE;

-- ---- The README's recipe, unchanged, in appdb as the superuser ---------------------------------
CREATE ROLE tasksys_sql_reader LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT 20 PASSWORD 'change-me';
-- The worker sets the same at connect; these hold for anyone else who logs in as the role.
ALTER ROLE tasksys_sql_reader SET default_transaction_read_only = on;
ALTER ROLE tasksys_sql_reader SET statement_timeout = '60s';
ALTER ROLE tasksys_sql_reader SET idle_in_transaction_session_timeout = '10s';
-- Only a superuser may set temp_file_limit, so the role carries it (the worker refuses a session without one).
ALTER ROLE tasksys_sql_reader SET temp_file_limit = '1GB';

GRANT CONNECT ON DATABASE appdb TO tasksys_sql_reader;
GRANT USAGE ON SCHEMA reporting TO tasksys_sql_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO tasksys_sql_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA reporting GRANT SELECT ON TABLES TO tasksys_sql_reader;

-- Nothing to create anywhere, temporary tables included (PUBLIC holds both by default; grant
-- TEMPORARY back to the roles that need it).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE TEMPORARY ON DATABASE appdb FROM PUBLIC;

-- Functions PUBLIC may call that act outside the transaction: signals to other sessions of the
-- same role (other owners' tasks), WAL writes that survive a rollback, dblink's second session.
-- The worker's cancel does not need pg_cancel_backend. By name, so any version's signatures match.
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT oid FROM pg_proc
            WHERE proname IN ('pg_cancel_backend', 'pg_terminate_backend', 'pg_logical_emit_message') OR proname LIKE 'dblink%'
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END $$;
-- ---- End of the README's recipe ----------------------------------------------------------------

-- Beyond the recipe: the role has no business in the product's database. Only the superuser
-- (which the api and workers use here) connects to it.
REVOKE CONNECT, TEMPORARY ON DATABASE tasks FROM PUBLIC;
