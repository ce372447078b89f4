/* signalr_bp--0.1.0--0.2.0.sql: upgrade a 0.1.0 installation to 0.2.0 */

\echo Use "ALTER EXTENSION signalr_bp UPDATE TO '0.2.0'" to load this file. \quit
