/*
 * notify_listener: LISTEN on a channel and report, for the first N
 * notifications, the delay between the "t" (epoch seconds) an append put
 * into its data and the moment the notification arrived: commit plus
 * delivery.  Prints "received p50_ms p99_ms max_ms".
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
	double		deadline;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s CONNINFO CHANNEL N TIMEOUT_S\n", argv[0]);
		return 2;
	}
	want = atoi(argv[3]);
	lat = malloc(sizeof(double) * want);
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
	printf("listening\n");
	fflush(stdout);

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
		PQconsumeInput(conn);
		while ((n = PQnotifies(conn)) != NULL)
		{
			double		arrived = now_s();
			char	   *t = strstr(n->extra, "\"t\": ");

			if (t != NULL && got < want)
				lat[got++] = (arrived - strtod(t + 5, NULL)) * 1000.0;
			PQfreemem(n);
		}
	}
	PQfinish(conn);
	if (got == 0)
	{
		printf("0 0 0 0\n");
		return 1;
	}
	qsort(lat, got, sizeof(double), cmp);
	printf("%d %.2f %.2f %.2f\n", got, lat[got / 2], lat[(int) (got * 0.99)], lat[got - 1]);
	return 0;
}
