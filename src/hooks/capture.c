/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  Table capture: ordinary tables whose INSERT, UPDATE and DELETE become
 *	  events of the log, in the same transaction.
 *
 * capture() installs one AFTER ROW trigger that appends Noun.Created (data =
 * the row), Noun.Updated (data = the changed columns; the log computes
 * before) and Noun.Deleted, and a BEFORE TRUNCATE one that deletes every
 * entity.  The target is the row's id prefixed with the noun in snake_case
 * (contact_42), unless the id already starts with that prefix, so tables
 * with serial ids never collide.  The append goes through the log's own
 * trigger, so the log's rules and hooks apply, and a before hook that raises
 * rejects the table's change itself.  Rows that exist when capture starts
 * are appended too, so that every captured row has an entity from then on.
 * JSON nulls are left out of an entity's state: a column set to NULL removes
 * its key, as in any merge patch.
 *
 * The queries built here name every schema and operator, and run with
 * search_path pinned to pg_catalog, so that a schema first in the caller's
 * search_path changes nothing (as PostgreSQL's maintenance commands do).
 * The appends themselves run with the caller's settings, as any append
 * does: hooks are the user's code.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(headlessly_capture);
PG_FUNCTION_INFO_V1(headlessly_uncapture);
PG_FUNCTION_INFO_V1(headlessly_capture_trigger);

#define CAPTURE_TRIGGER_NAME "headlessly_capture"
#define CAPTURE_TRUNCATE_TRIGGER_NAME "headlessly_capture_truncate"

/* rows read per fetch when capture starts or a captured table is truncated */
#define CAPTURE_FETCH_ROWS 1000

#if PG_VERSION_NUM >= 160000
#define table_is_owned_by(relid, roleid) object_ownercheck(RelationRelationId, relid, roleid)
#else
#define table_is_owned_by(relid, roleid) pg_class_ownercheck(relid, roleid)
#endif

/* Names ---------------------------------------------------------------------- */

static bool
is_noun(const char *noun)
{
	if (!(noun[0] >= 'A' && noun[0] <= 'Z'))
		return false;
	for (const char *p = noun + 1; *p; p++)
	{
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return false;
	}
	return true;
}

/*
 * English plural to singular, for the words tables are named after.  The
 * first rule whose ending matches wins: a whole word where whole_word is
 * set, else the end of a word.  Irregular and uncountable words come
 * before the exceptions to the general rules, and those before the rules.
 */
typedef struct Singular
{
	const char *plural;
	const char *singular;
	bool		whole_word;
} Singular;

static const Singular singular_rules[] = {
	/* uncountable, or the same in both numbers */
	{"data", "data", false}, {"media", "media", false}, {"news", "news", true},
	{"series", "series", false}, {"species", "species", false},
	{"equipment", "equipment", false}, {"information", "information", false},
	{"feedback", "feedback", false}, {"ware", "ware", false},
	{"sheep", "sheep", true}, {"fish", "fish", false}, {"deer", "deer", false},
	{"moose", "moose", true}, {"craft", "craft", false}, {"offspring", "offspring", true},
	{"money", "money", true}, {"rice", "rice", true}, {"police", "police", true},
	{"staff", "staff", true}, {"personnel", "personnel", true}, {"advice", "advice", true},
	{"knowledge", "knowledge", true}, {"research", "research", true},
	{"traffic", "traffic", true}, {"luggage", "luggage", true}, {"baggage", "baggage", true},
	{"furniture", "furniture", true}, {"evidence", "evidence", true}, {"mail", "mail", true},
	{"analytics", "analytics", true}, {"logistics", "logistics", true},
	{"physics", "physics", true}, {"economics", "economics", true},
	{"mathematics", "mathematics", true}, {"ethics", "ethics", true},
	{"politics", "politics", true}, {"athletics", "athletics", true},
	{"chaos", "chaos", true}, {"kudos", "kudos", true}, {"ethos", "ethos", true},
	{"cosmos", "cosmos", true}, {"means", "means", true}, {"headquarters", "headquarters", true},

	/* singular words that would look plural */
	{"alias", "alias", true}, {"canvas", "canvas", true}, {"atlas", "atlas", true},
	{"gas", "gas", true}, {"bias", "bias", true}, {"lens", "lens", true},
	{"specimen", "specimen", false}, {"abdomen", "abdomen", true}, {"omen", "omen", true},
	{"amen", "amen", true}, {"stamen", "stamen", true}, {"regimen", "regimen", true},
	{"semen", "semen", true}, {"hymen", "hymen", true}, {"acumen", "acumen", true},
	{"albumen", "albumen", true}, {"bitumen", "bitumen", true}, {"lumen", "lumen", true},
	{"ramen", "ramen", true}, {"cyclamen", "cyclamen", true},

	/* irregular plurals */
	{"people", "person", false}, {"children", "child", false}, {"men", "man", false},
	{"oxen", "ox", true}, {"feet", "foot", false}, {"teeth", "tooth", false},
	{"geese", "goose", false}, {"mice", "mouse", true}, {"dormice", "dormouse", true},
	{"lice", "louse", true}, {"dice", "die", true}, {"quizzes", "quiz", false},
	{"criteria", "criterion", false}, {"phenomena", "phenomenon", false},
	{"automata", "automaton", false}, {"curricula", "curriculum", false},
	{"memoranda", "memorandum", false}, {"strata", "stratum", false},
	{"bacteria", "bacterium", false}, {"addenda", "addendum", false},
	{"errata", "erratum", false}, {"millennia", "millennium", false},
	{"symposia", "symposium", false}, {"schemata", "schema", false},
	{"formulae", "formula", true}, {"antennae", "antenna", true}, {"larvae", "larva", true},
	{"vertebrae", "vertebra", true}, {"alumnae", "alumna", true}, {"algae", "alga", true},
	{"nebulae", "nebula", true},
	{"cacti", "cactus", true}, {"radii", "radius", true}, {"stimuli", "stimulus", true},
	{"fungi", "fungus", true}, {"nuclei", "nucleus", true}, {"alumni", "alumnus", true},
	{"foci", "focus", true}, {"syllabi", "syllabus", true}, {"octopi", "octopus", true},
	{"loci", "locus", true}, {"termini", "terminus", true},

	/* -ves: f and fe words; the rest only add s (archives, olives) */
	{"wolves", "wolf", false}, {"halves", "half", false}, {"calves", "calf", false},
	{"shelves", "shelf", false}, {"selves", "self", false}, {"elves", "elf", true},
	{"loaves", "loaf", false}, {"thieves", "thief", false}, {"sheaves", "sheaf", false},
	{"scarves", "scarf", false}, {"wharves", "wharf", false}, {"dwarves", "dwarf", false},
	{"hooves", "hoof", false}, {"knives", "knife", false}, {"wives", "wife", false},
	{"lives", "life", true},

	/* -oes of words in -oe; the rest are -o words (heroes, potatoes) */
	{"shoes", "shoe", false}, {"tiptoes", "tiptoe", false}, {"mistletoes", "mistletoe", false},
	{"toes", "toe", true}, {"foes", "foe", true}, {"hoes", "hoe", true},
	{"does", "doe", true}, {"roes", "roe", true}, {"woes", "woe", true},
	{"floes", "floe", true}, {"sloes", "sloe", true}, {"throes", "throe", true},
	{"aloes", "aloe", true}, {"oboes", "oboe", false}, {"canoes", "canoe", false},

	/* -uses of words in -use; the rest are -us words (statuses, buses) */
	{"ouses", "ouse", false}, {"auses", "ause", false}, {"uses", "use", true},
	{"fuses", "fuse", true}, {"muses", "muse", true}, {"ruses", "ruse", true},
	{"abuses", "abuse", false}, {"excuses", "excuse", false}, {"refuses", "refuse", false},
	{"accuses", "accuse", false}, {"misuses", "misuse", false}, {"recluses", "recluse", false},
	{"amuses", "amuse", false}, {"peruses", "peruse", false}, {"fuses", "fuse", false},

	/* -ses of words in -sis, and of words in -as */
	{"analyses", "analysis", false}, {"crises", "crisis", false}, {"theses", "thesis", false},
	{"diagnoses", "diagnosis", false}, {"prognoses", "prognosis", false},
	{"synopses", "synopsis", false}, {"emphases", "emphasis", false},
	{"neuroses", "neurosis", false}, {"paralyses", "paralysis", false},
	{"metamorphoses", "metamorphosis", false}, {"nemeses", "nemesis", false},
	{"oases", "oasis", true}, {"axes", "axis", true},
	{"aliases", "alias", true}, {"canvases", "canvas", true}, {"atlases", "atlas", true},
	{"gases", "gas", true}, {"biases", "bias", true}, {"lenses", "lens", true},

	/* -ices of words in -ex and -ix; the rest only add s (invoices, prices) */
	{"indices", "index", false}, {"vertices", "vertex", false}, {"vortices", "vortex", false},
	{"apices", "apex", false}, {"codices", "codex", false}, {"cortices", "cortex", false},
	{"matrices", "matrix", false}, {"appendices", "appendix", false},
	{"radices", "radix", false}, {"helices", "helix", false}, {"simplices", "simplex", false},

	/* -ches of words in -che */
	{"caches", "cache", false}, {"headaches", "headache", false}, {"earaches", "earache", false},
	{"toothaches", "toothache", false}, {"backaches", "backache", false},
	{"heartaches", "heartache", false}, {"niches", "niche", false},
	{"avalanches", "avalanche", false}, {"moustaches", "moustache", false},
	{"mustaches", "mustache", false}, {"cliches", "cliche", false}, {"quiches", "quiche", false},
	{"creches", "creche", false}, {"psyches", "psyche", false}, {"fiches", "fiche", false},

	/* -ies of words in -ie */
	{"movies", "movie", false}, {"cookies", "cookie", false}, {"zombies", "zombie", false},
	{"calories", "calorie", false}, {"selfies", "selfie", false}, {"smoothies", "smoothie", false},
	{"rookies", "rookie", false}, {"hippies", "hippie", false}, {"goodies", "goodie", false},
	{"brownies", "brownie", false}, {"pixies", "pixie", false}, {"freebies", "freebie", false},
	{"genies", "genie", false}, {"hoodies", "hoodie", false}, {"newbies", "newbie", false},
	{"techies", "techie", false}, {"sorties", "sortie", false}, {"prairies", "prairie", false},
	{"reveries", "reverie", false}, {"coteries", "coterie", false},
	{"menageries", "menagerie", false}, {"rotisseries", "rotisserie", false},
	{"lingeries", "lingerie", false}, {"birdies", "birdie", false}, {"aunties", "auntie", false},
	{"collies", "collie", false}, {"pies", "pie", true}, {"ties", "tie", true},
	{"lies", "lie", true}, {"dies", "die", true},

	/* the rules */
	{"ies", "y", false},
	{"sses", "ss", false}, {"xes", "x", false}, {"ches", "ch", false}, {"shes", "sh", false},
	{"zzes", "zz", false}, {"tzes", "tz", false}, {"uses", "us", false}, {"oes", "o", false},
	{"ss", "ss", false}, {"us", "us", false}, {"is", "is", false},
	{"s", "", false},
};

static char *
singular(const char *word)
{
	int			len = strlen(word);
	char	   *lower = pstrdup(word);

	for (int i = 0; i < len; i++)
		lower[i] = pg_ascii_tolower((unsigned char) lower[i]);

	for (int r = 0; r < lengthof(singular_rules); r++)
	{
		const Singular *rule = &singular_rules[r];
		int			plen = strlen(rule->plural);
		StringInfoData buf;
		bool		upper;

		if (rule->whole_word ? strcmp(lower, rule->plural) != 0 :
			(len < plen || strcmp(lower + len - plen, rule->plural) != 0))
			continue;

		/* CONTACTS -> CONTACT, Companies -> Company */
		upper = word[len - 1] >= 'A' && word[len - 1] <= 'Z';
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, word, len - plen);
		for (const char *p = rule->singular; *p; p++)
		{
			char		c = *p;

			/* a whole word keeps the case of its first letter */
			if ((upper || (p == rule->singular && buf.len == 0 &&
						   word[0] >= 'A' && word[0] <= 'Z')))
				c = pg_ascii_toupper((unsigned char) c);
			appendStringInfoChar(&buf, c);
		}
		return buf.data;
	}
	return pstrdup(word);
}

/*
 * contacts -> Contact, lead_events -> LeadEvent, companies -> Company:
 * words split on "_", the last made singular, each capitalised.
 */
static char *
noun_for_table(const char *relname)
{
	StringInfoData buf;
	char	   *name = pstrdup(relname);
	char	   *words[64];
	int			nwords = 0;
	char	   *save;

	for (char *w = strtok_r(name, "_", &save); w && nwords < lengthof(words);
		 w = strtok_r(NULL, "_", &save))
		words[nwords++] = w;

	initStringInfo(&buf);
	for (int i = 0; i < nwords; i++)
	{
		char	   *word = i == nwords - 1 ? singular(words[i]) : words[i];

		for (char *p = word; *p; p++)
		{
			char		c = *p;

			if (p == word && c >= 'a' && c <= 'z')
				c = c - 'a' + 'A';
			appendStringInfoChar(&buf, c);
		}
	}
	return buf.data;
}

/*
 * LeadEvent -> "lead_event_", HTTPRequest -> "http_request_": the prefix of
 * the targets of a noun's captured rows.
 */
static char *
target_prefix(const char *noun)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const char *p = noun; *p; p++)
	{
		bool		upper = *p >= 'A' && *p <= 'Z';

		if (upper && p > noun)
		{
			bool		after_lower = (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= '0' && p[-1] <= '9');
			bool		before_lower = p[1] >= 'a' && p[1] <= 'z';

			if (after_lower || (p[-1] >= 'A' && p[-1] <= 'Z' && before_lower))
				appendStringInfoChar(&buf, '_');
		}
		appendStringInfoChar(&buf, pg_ascii_tolower((unsigned char) *p));
	}
	appendStringInfoChar(&buf, '_');
	return buf.data;
}

/* What a captured table's trigger knows: its arguments. */
typedef struct CaptureArgs
{
	const char *noun;
	const char *id_column;
	const char *prefix;			/* "" for tables captured by version 0.1 */
} CaptureArgs;

/* Appending ------------------------------------------------------------------ */

static const char *
capture_actor(void)
{
	if (hl_actor_setting != NULL && hl_actor_setting[0] != '\0')
		return hl_actor_setting;
	return GetUserNameFromId(GetUserId(), false);
}

/* {"operation": ..., "schema": ..., "table": ...}, whatever the names contain */
static Jsonb *
capture_metadata(Relation rel, const char *operation)
{
	JsonbParseState *ps = NULL;

	(void) pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	hl_push_string(&ps, WJB_KEY, "operation");
	hl_push_string(&ps, WJB_VALUE, operation);
	hl_push_string(&ps, WJB_KEY, "schema");
	hl_push_string(&ps, WJB_VALUE, get_namespace_name(RelationGetNamespace(rel)));
	hl_push_string(&ps, WJB_KEY, "table");
	hl_push_string(&ps, WJB_VALUE, RelationGetRelationName(rel));
	return JsonbValueToJsonb(pushJsonbValue(&ps, WJB_END_OBJECT, NULL));
}

static void
append(const CaptureArgs *args, const char *verb, const char *target, Jsonb *data,
	   Jsonb *metadata)
{
	Datum		values[A_NCOLUMNS];
	char		nulls[A_NCOLUMNS];

	memset(nulls, 'n', sizeof(nulls));
	values[A_TENANT] = CStringGetTextDatum(hl_current_tenant());
	values[A_TYPE] = CStringGetTextDatum(psprintf("%s.%s", args->noun, verb));
	values[A_TARGET] = CStringGetTextDatum(target);
	values[A_DATA] = JsonbPGetDatum(data);
	values[A_ACTOR] = CStringGetTextDatum(capture_actor());
	values[A_SOURCE] = CStringGetTextDatum("capture");
	values[A_SOURCE_TYPE] = CStringGetTextDatum("internal");
	values[A_METADATA] = JsonbPGetDatum(metadata);
	nulls[A_TENANT] = nulls[A_TYPE] = nulls[A_TARGET] = nulls[A_DATA] = ' ';
	nulls[A_ACTOR] = nulls[A_SOURCE] = nulls[A_SOURCE_TYPE] = nulls[A_METADATA] = ' ';

	(void) hl_append_event(values, nulls, false);
}

/*
 * The row's target: its id as text, behind the noun's prefix unless it
 * already starts with it.  A row without an id cannot be an entity.
 */
static char *
row_target(Relation rel, HeapTuple row, const CaptureArgs *args)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attno = SPI_fnumber(tupdesc, args->id_column);
	char	   *id;
	size_t		prefix_len = strlen(args->prefix);

	if (attno <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("captured table \"%s\" has no column \"%s\"",
						RelationGetRelationName(rel), args->id_column),
				 errhint("Capture it again with headlessly.capture(rel, noun, id_column).")));
	id = SPI_getvalue(row, tupdesc, attno);
	if (id == NULL || id[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("row of captured table \"%s\" has no %s",
						RelationGetRelationName(rel), args->id_column),
				 errdetail("Captured rows become entities, and their id is the target.")));
	if (strncmp(id, args->prefix, prefix_len) == 0)
		return id;
	return psprintf("%s%s", args->prefix, id);
}

/* Our own queries ------------------------------------------------------------ */

/*
 * Run what follows with search_path pg_catalog, pg_temp until
 * unpin_search_path(); an error unwinds it with the (sub)transaction.
 */
static int
pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

static void
unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

static void
execute(const char *query, int expected)
{
	int			nestlevel = pin_search_path();
	int			rc = SPI_execute(query, false, 0);

	hl_spi_check(rc, expected, query);
	unpin_search_path(nestlevel);
}

static char *
qualified_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/* A cursor over query as the snapshot sees the tables, read a batch at a time. */
static Portal
open_cursor(const char *query, int nargs, Oid *argtypes, Datum *args, Snapshot snapshot)
{
	int			nestlevel = pin_search_path();
	Portal		portal;

	/* a read-only cursor keeps the active snapshot */
	PushActiveSnapshot(snapshot);
	portal = SPI_cursor_open_with_args(NULL, query, nargs, argtypes, args, NULL,
									   true, CURSOR_OPT_NO_SCROLL);
	PopActiveSnapshot();
	unpin_search_path(nestlevel);
	return portal;
}

static SPITupleTable *
fetch_rows(Portal portal, uint64 *nrows)
{
	int			nestlevel = pin_search_path();

	SPI_cursor_fetch(portal, true, CAPTURE_FETCH_ROWS);
	unpin_search_path(nestlevel);
	*nrows = SPI_processed;
	return SPI_tuptable;
}

/*
 * Capture and TRUNCATE read every row of the table to append their events;
 * row-level security that binds the current role would hide some, and
 * TRUNCATE removes them all the same (so would their events be missing).
 */
static void
check_reads_every_row(Relation rel, bool truncating)
{
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot %s %s as role \"%s\": row-level security applies",
						truncating ? "truncate captured table" : "capture table",
						qualified_name(rel), GetUserNameFromId(GetUserId(), false)),
				 errdetail("Every row of the table becomes an event, and the table's policies could hide rows from this role."),
				 truncating ?
				 errhint("Truncate it as the table's owner or a role with BYPASSRLS (unless the table forces row security), or DELETE the rows this role may see.") :
				 errhint("Capture it as the table's owner or a role with BYPASSRLS (unless the table forces row security).")));
}

/* The trigger ---------------------------------------------------------------- */

Datum
headlessly_capture_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	Trigger    *trigger;
	Relation	rel;
	TupleDesc	tupdesc;
	CaptureArgs args;

	/* the firing depends on the event: checked below */
	trigdata = hl_trigger_data(fcinfo, "headlessly.capture_trigger()", 0);
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ?
		!(TRIGGER_FIRED_BEFORE(trigdata->tg_event) && TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event)) :
		!(TRIGGER_FIRED_AFTER(trigdata->tg_event) && TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW, or BEFORE TRUNCATE",
						"headlessly.capture_trigger()"),
				 errhint("Install it with headlessly.capture().")));
	trigger = trigdata->tg_trigger;
	if (trigger->tgnargs != 2 && trigger->tgnargs != 3)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s needs the noun, the id column and the target prefix as arguments",
						"headlessly.capture_trigger()"),
				 errhint("Install it with headlessly.capture().")));
	args.noun = trigger->tgargs[0];
	args.id_column = trigger->tgargs[1];
	/* tables captured by version 0.1 keep their bare-id targets */
	args.prefix = trigger->tgnargs == 3 ? trigger->tgargs[2] : "";
	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);

	hl_spi_connect();

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		/* every row of the table itself goes: each entity is deleted */
		Portal		portal;
		Snapshot	snapshot;
		Jsonb	   *metadata;
		SPITupleTable *rows;
		uint64		n;

		check_reads_every_row(rel, true);

		/*
		 * The statement's snapshot was taken before TRUNCATE waited for its
		 * lock: rows committed meanwhile go too, so read with a snapshot
		 * taken now, as capture() does.
		 */
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		portal = open_cursor(psprintf("SELECT * FROM ONLY %s", qualified_name(rel)),
							 0, NULL, NULL, snapshot);
		metadata = capture_metadata(rel, "TRUNCATE");

		while ((rows = fetch_rows(portal, &n)) != NULL && n > 0)
		{
			for (uint64 i = 0; i < n; i++)
				append(&args, "Deleted", row_target(rel, rows->vals[i], &args),
					   hl_empty_object(), metadata);
			SPI_freetuptable(rows);
		}
		SPI_cursor_close(portal);
		UnregisterSnapshot(snapshot);
	}
	else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		HeapTuple	row = trigdata->tg_trigtuple;

		append(&args, "Created", row_target(rel, row, &args),
			   hl_strip_top_level_nulls(hl_row_to_jsonb(tupdesc, row)),
			   capture_metadata(rel, "INSERT"));
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldrow = trigdata->tg_trigtuple;
		HeapTuple	newrow = trigdata->tg_newtuple;
		char	   *oldtarget = row_target(rel, oldrow, &args);
		char	   *newtarget = row_target(rel, newrow, &args);
		Jsonb	   *newjson = hl_row_to_jsonb(tupdesc, newrow);

		if (strcmp(oldtarget, newtarget) != 0)
		{
			/* a new id is another entity: the old one ends, the new one starts */
			Jsonb	   *metadata = capture_metadata(rel, "UPDATE");

			append(&args, "Deleted", oldtarget, hl_empty_object(), metadata);
			append(&args, "Created", newtarget, hl_strip_top_level_nulls(newjson), metadata);
		}
		else
		{
			Jsonb	   *patch = hl_changed_keys(hl_row_to_jsonb(tupdesc, oldrow), newjson);

			/* an UPDATE that changes nothing appends nothing */
			if (patch != NULL)
				append(&args, "Updated", newtarget, patch, capture_metadata(rel, "UPDATE"));
		}
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		append(&args, "Deleted", row_target(rel, trigdata->tg_trigtuple, &args),
			   hl_empty_object(), capture_metadata(rel, "DELETE"));
	}

	SPI_finish();
	return PointerGetDatum(NULL);
}

/* capture() and uncapture() -------------------------------------------------- */

/*
 * Rows that exist when capture starts become entities, or catch an entity
 * of the same target up with the changed columns: the state a captured row
 * would have had if it had been captured all along.  One query reads each
 * row with its entity's state; the target is computed from the id's output
 * function (format's %s) as row_target() does, to join on.
 */
static void
catch_up(Relation rel, const CaptureArgs *args, Snapshot snapshot)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext,
												  "headlessly capture catch-up",
												  ALLOCSET_DEFAULT_SIZES);
	Jsonb	   *metadata = capture_metadata(rel, "CAPTURE");
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		query_args[2];
	char	   *query;
	Portal		portal;
	SPITupleTable *rows;
	uint64		n;

	query = psprintf("SELECT r.row, s.state"
					 "  FROM (SELECT t AS row,"
					 "               CASE WHEN pg_catalog.starts_with(i.id, $2) THEN i.id"
					 "                    ELSE $2 OPERATOR(pg_catalog.||) i.id END AS target"
					 "          FROM ONLY %s t,"
					 "               LATERAL (SELECT pg_catalog.format('%%s', t.%s) AS id) i) r"
					 "  LEFT JOIN " HL_SCHEMA ".entities s"
					 "    ON s.tenant OPERATOR(pg_catalog.=) $1"
					 "   AND s.target OPERATOR(pg_catalog.=) r.target",
					 qualified_name(rel), quote_identifier(args->id_column));
	query_args[0] = CStringGetTextDatum(hl_current_tenant());
	query_args[1] = CStringGetTextDatum(args->prefix);
	portal = open_cursor(query, 2, argtypes, query_args, snapshot);

	while ((rows = fetch_rows(portal, &n)) != NULL && n > 0)
	{
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			bool		isnull;
			HeapTupleHeader header;
			HeapTupleData row;
			Datum		state;
			char	   *target;
			Jsonb	   *data;

			/* the whole-row value is a tuple of the table's own row type */
			header = DatumGetHeapTupleHeader(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
			row.t_len = HeapTupleHeaderGetDatumLength(header);
			ItemPointerSetInvalid(&row.t_self);
			row.t_tableOid = RelationGetRelid(rel);
			row.t_data = header;

			target = row_target(rel, &row, args);
			data = hl_strip_top_level_nulls(hl_row_to_jsonb(tupdesc, &row));
			state = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);
			if (isnull)
				append(args, "Created", target, data, metadata);
			else
			{
				Jsonb	   *patch = hl_changed_keys(DatumGetJsonbP(state), data);

				if (patch != NULL)
					append(args, "Updated", target, patch, metadata);
			}

			MemoryContextSwitchTo(old);
			MemoryContextReset(row_cxt);
			CHECK_FOR_INTERRUPTS();
		}
		SPI_freetuptable(rows);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(row_cxt);
}

static bool
has_trigger(Oid relid, const char *name)
{
	return OidIsValid(get_trigger_oid(relid, name, true));
}

static void
create_trigger(Relation rel, const char *name, const char *when, const char *level,
			   const CaptureArgs *args)
{
	execute(psprintf("CREATE TRIGGER %s %s ON %s FOR EACH %s"
					 " EXECUTE FUNCTION " HL_SCHEMA ".capture_trigger(%s, %s, %s)",
					 name, when, qualified_name(rel), level, quote_literal_cstr(args->noun),
					 quote_literal_cstr(args->id_column), quote_literal_cstr(args->prefix)),
			SPI_OK_UTILITY);
}

/* After waiting for a lock: the table may have gone meanwhile. */
static void
check_still_exists(Oid relid)
{
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table was dropped while waiting for its lock")));
}

Datum
headlessly_capture(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *relname;
	Relation	rel;
	CaptureArgs args;
	AclResult	aclresult;
	AttrNumber	attno;
	Snapshot	snapshot;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table and id column to capture must not be NULL")));
	relid = PG_GETARG_OID(0);
	args.id_column = NameStr(*PG_GETARG_NAME(2));

	/* the rights CREATE TRIGGER and reading the rows need, before any lock */
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER);
	if (aclresult == ACLCHECK_OK)
		aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));

	/*
	 * Writers wait until the triggers are in place, so no row escapes both
	 * the catch-up and the trigger; a concurrent capture() of the same table
	 * waits, then finds it captured.
	 */
	LockRelationOid(relid, ShareRowExclusiveLock);
	check_still_exists(relid);
	relname = get_rel_name(relid);

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ordinary table", relname),
				 errdetail("Only ordinary tables can be captured; for a partitioned table, capture each partition.")));
	if (get_rel_namespace(relid) == get_namespace_oid(HL_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the tables of the %s schema cannot be captured", HL_SCHEMA)));

	attno = get_attnum(relid, args.id_column);
	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"%s\"", relname, args.id_column),
				 errhint("Name the column that identifies a row: headlessly.capture(rel, noun, id_column).")));
	/* ctid and the like change without the row changing */
	if (attno < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("system column \"%s\" cannot identify the rows of \"%s\"",
						args.id_column, relname),
				 errhint("Name a column of the table: headlessly.capture(rel, noun, id_column).")));

	if (PG_ARGISNULL(1))
	{
		args.noun = noun_for_table(relname);
		if (!is_noun(args.noun))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot make a noun of table name \"%s\"", relname),
					 errdetail("A noun is a capital letter followed by ASCII letters and digits, like \"Contact\"."),
					 errhint("Pass one: headlessly.capture(rel, noun => 'Contact').")));
	}
	else
	{
		args.noun = text_to_cstring(PG_GETARG_TEXT_PP(1));
		if (!is_noun(args.noun))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid noun \"%s\"", args.noun),
					 errdetail("A noun is a capital letter followed by ASCII letters and digits, like \"Contact\".")));
	}
	args.prefix = target_prefix(args.noun);

	if (has_trigger(relid, CAPTURE_TRIGGER_NAME))
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is already captured, skipping", relname),
				 errhint("Call headlessly.uncapture() first to capture it with another noun or id column.")));
		PG_RETURN_VOID();
	}

	rel = table_open(relid, NoLock);
	check_reads_every_row(rel, false);
	hl_spi_connect();

	/*
	 * Rows committed while we waited for the lock are in the table too: read
	 * it with a snapshot taken now, also in a REPEATABLE READ transaction
	 * whose own snapshot is older.
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	{
		int			nestlevel = pin_search_path();
		char	   *query = psprintf("SELECT FROM ONLY %s WHERE %s IS NULL LIMIT 1",
									 qualified_name(rel), quote_identifier(args.id_column));
		int			rc;

		PushActiveSnapshot(snapshot);
		rc = SPI_execute(query, true, 1);
		PopActiveSnapshot();
		hl_spi_check(rc, SPI_OK_SELECT, query);
		unpin_search_path(nestlevel);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("table \"%s\" has rows without %s", relname, args.id_column),
					 errdetail("Captured rows become entities, and their id is the target.")));
	}

	catch_up(rel, &args, snapshot);
	UnregisterSnapshot(snapshot);

	create_trigger(rel, CAPTURE_TRIGGER_NAME, "AFTER INSERT OR UPDATE OR DELETE", "ROW", &args);
	create_trigger(rel, CAPTURE_TRUNCATE_TRIGGER_NAME, "BEFORE TRUNCATE", "STATEMENT", &args);

	SPI_finish();
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

Datum
headlessly_uncapture(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *qualified;

	if (!has_trigger(relid, CAPTURE_TRIGGER_NAME))
		PG_RETURN_BOOL(false);

	/* DROP TRIGGER's right and lock, taken before looking again */
	if (!table_is_owned_by(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	LockRelationOid(relid, AccessExclusiveLock);
	check_still_exists(relid);
	if (!has_trigger(relid, CAPTURE_TRIGGER_NAME))
		PG_RETURN_BOOL(false);

	qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid));
	hl_spi_connect();
	execute(psprintf("DROP TRIGGER " CAPTURE_TRIGGER_NAME " ON %s", qualified), SPI_OK_UTILITY);
	execute(psprintf("DROP TRIGGER IF EXISTS " CAPTURE_TRUNCATE_TRIGGER_NAME " ON %s", qualified),
			SPI_OK_UTILITY);
	SPI_finish();
	PG_RETURN_BOOL(true);
}
