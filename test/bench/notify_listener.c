/*
 * notify_listener: LISTEN on a channel and write, for each of the first N
 * notifications, one line "id arrived t": the event's id (from the
 * payload), the moment the notification arrived, and the "t" (epoch
 * seconds) the append put into its data, each in epoch seconds.  The
 * benchmark joins the lines to the events' commit timestamps.  Last line:
 * "received p50_ms p99_ms max_ms" of arrived - t.
 *
 * The loop sleeps in select() until the socket is readable: it does not
 * spin, and between notifications it costs the machine nothing.
 *
 * Usage: notify_listener CONNINFO CHANNEL N TIMEOUT_S
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <libpq-fe.h>

static double
now_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	char		listen[256];
	int			want;
	int			got = 0;
	double	   *lat;
	double	   *arrived_at;
	double	   *sent_at;
	char	  **ids;
	double		deadline;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s CONNINFO CHANNEL N TIMEOUT_S\n", argv[0]);
		return 2;
	}
	want = atoi(argv[3]);
	lat = malloc(sizeof(double) * want);
	arrived_at = malloc(sizeof(double) * want);
	sent_at = malloc(sizeof(double) * want);
	ids = malloc(sizeof(char *) * want);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	snprintf(listen, sizeof(listen), "LISTEN \"%s\"", argv[2]);
	res = PQexec(conn, listen);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	/* for the benchmark, which may renice the listening backend */
	fprintf(stderr, "backend %d\n", PQbackendPID(conn));

	deadline = now_s() + atof(argv[4]);
	while (got < want && now_s() < deadline)
	{
		int			sock = PQsocket(conn);
		fd_set		fds;
		struct timeval tv = {0, 100000};
		PGnotify   *n;

		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		if (select(sock + 1, &fds, NULL, NULL, &tv) < 0)
			break;
		if (!PQconsumeInput(conn))
		{
			fprintf(stderr, "%s", PQerrorMessage(conn));
			break;
		}
		/* one clock reading for what arrived together; the printing waits */
		{
			double		arrived = now_s();

			while ((n = PQnotifies(conn)) != NULL)
			{
				char	   *t = strstr(n->extra, "\"t\": ");
				char	   *id = strstr(n->extra, "\"id\": \"");

				if (t != NULL && id != NULL && got < want)
				{
					id += 7;
					ids[got] = strndup(id, strcspn(id, "\""));
					sent_at[got] = strtod(t + 5, NULL);
					arrived_at[got] = arrived;
					lat[got] = (arrived - sent_at[got]) * 1000.0;
					got++;
				}
				PQfreemem(n);
			}
		}
	}
	PQfinish(conn);
	for (int i = 0; i < got; i++)
		printf("%s %.6f %.6f\n", ids[i], arrived_at[i], sent_at[i]);
	if (got == 0)
	{
		printf("0 0 0 0\n");
		return 1;
	}
	qsort(lat, got, sizeof(double), cmp);
	printf("%d %.2f %.2f %.2f\n", got, lat[got / 2], lat[(int) (got * 0.99)], lat[got - 1]);
	return 0;
}
