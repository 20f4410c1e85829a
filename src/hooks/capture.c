/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  Table capture: ordinary tables whose INSERT, UPDATE and DELETE become
 *	  events of the log, in the same transaction.
 *
 * capture() installs one AFTER ROW trigger that appends Noun.Created (data =
 * the row), Noun.Updated (data = the changed columns; the log computes
 * before) and Noun.Deleted, with the row's id as target.  The append goes
 * through the log's own trigger, so the log's rules and hooks apply, and a
 * before hook that raises rejects the table's change itself.  Rows that
 * exist when capture starts are appended too, so that every captured row
 * has an entity from then on.  JSON nulls are left out of an entity's
 * state: a column set to NULL removes its key, as in any merge patch.
 *
 *-------------------------------------------------------------------------
 */
#include "hooks/hooks.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(headlessly_capture);
PG_FUNCTION_INFO_V1(headlessly_uncapture);
PG_FUNCTION_INFO_V1(headlessly_capture_trigger);

#define CAPTURE_TRIGGER_NAME "headlessly_capture"
#define CAPTURE_TRUNCATE_TRIGGER_NAME "headlessly_capture_truncate"


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

/* Appending ------------------------------------------------------------------ */

static const char *
capture_actor(void)
{
	if (hl_actor_setting != NULL && hl_actor_setting[0] != '\0')
		return hl_actor_setting;
	return GetUserNameFromId(GetUserId(), false);
}

static Jsonb *
capture_metadata(Relation rel, const char *operation)
{
	char	   *json = psprintf("{\"table\": \"%s.%s\", \"operation\": \"%s\"}",
								get_namespace_name(RelationGetNamespace(rel)),
								RelationGetRelationName(rel), operation);

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

static void
append(const char *noun, const char *verb, char *target, Jsonb *data, Jsonb *metadata)
{
	Datum		values[A_NCOLUMNS];
	char		nulls[A_NCOLUMNS];

	memset(nulls, 'n', sizeof(nulls));
	values[A_TENANT] = CStringGetTextDatum(hl_current_tenant());
	values[A_TYPE] = CStringGetTextDatum(psprintf("%s.%s", noun, verb));
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

/* The row's id as text; a row without one cannot be an entity. */
static char *
row_target(Relation rel, HeapTuple row, const char *id_column)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attno = SPI_fnumber(tupdesc, id_column);
	char	   *target;

	if (attno <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("captured table \"%s\" has no column \"%s\"",
						RelationGetRelationName(rel), id_column),
				 errhint("Capture it again with headlessly.capture(rel, noun, id_column).")));
	target = SPI_getvalue(row, tupdesc, attno);
	if (target == NULL || target[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_HL_INVALID_EVENT),
				 errmsg("row of captured table \"%s\" has no %s",
						RelationGetRelationName(rel), id_column),
				 errdetail("Captured rows become entities, and their id is the target.")));
	return target;
}

Datum
headlessly_capture_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	Relation	rel;
	TupleDesc	tupdesc;
	const char *noun;
	const char *id_column;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the trigger manager",
						"headlessly.capture_trigger()")));
	trigger = trigdata->tg_trigger;
	if (trigger->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s needs two arguments, the noun and the id column",
						"headlessly.capture_trigger()")));
	noun = trigger->tgargs[0];
	id_column = trigger->tgargs[1];
	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);

	hl_spi_connect();

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		/* every row goes: each entity is deleted */
		char	   *query = psprintf("SELECT * FROM ONLY %s",
									 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
																RelationGetRelationName(rel)));
		Portal		portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);
		Jsonb	   *metadata = capture_metadata(rel, "TRUNCATE");

		for (;;)
		{
			SPI_cursor_fetch(portal, true, 1000);
			if (SPI_processed == 0)
				break;
			{
				SPITupleTable *rows = SPI_tuptable;
				uint64		n = SPI_processed;

				for (uint64 i = 0; i < n; i++)
					append(noun, "Deleted", row_target(rel, rows->vals[i], id_column),
						   hl_empty_object(), metadata);
				SPI_freetuptable(rows);
			}
		}
		SPI_cursor_close(portal);
	}
	else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		HeapTuple	row = trigdata->tg_trigtuple;

		append(noun, "Created", row_target(rel, row, id_column),
			   hl_strip_top_level_nulls(hl_row_to_jsonb(tupdesc, row)),
			   capture_metadata(rel, "INSERT"));
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldrow = trigdata->tg_trigtuple;
		HeapTuple	newrow = trigdata->tg_newtuple;
		char	   *oldtarget = row_target(rel, oldrow, id_column);
		char	   *newtarget = row_target(rel, newrow, id_column);
		Jsonb	   *newjson = hl_row_to_jsonb(tupdesc, newrow);

		if (strcmp(oldtarget, newtarget) != 0)
		{
			/* a new id is another entity: the old one ends, the new one starts */
			Jsonb	   *metadata = capture_metadata(rel, "UPDATE");

			append(noun, "Deleted", oldtarget, hl_empty_object(), metadata);
			append(noun, "Created", newtarget, hl_strip_top_level_nulls(newjson), metadata);
		}
		else
		{
			Jsonb	   *patch = hl_changed_keys(hl_row_to_jsonb(tupdesc, oldrow), newjson);

			/* an UPDATE that changes nothing appends nothing */
			if (patch != NULL)
				append(noun, "Updated", newtarget, patch, capture_metadata(rel, "UPDATE"));
		}
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		append(noun, "Deleted", row_target(rel, trigdata->tg_trigtuple, id_column),
			   hl_empty_object(), capture_metadata(rel, "DELETE"));
	}

	SPI_finish();
	return PointerGetDatum(NULL);
}

/* capture() and uncapture() -------------------------------------------------- */

static bool
has_trigger(Oid relid, const char *name)
{
	return OidIsValid(get_trigger_oid(relid, name, true));
}

static char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

static void
execute(const char *query, int expected)
{
	int			rc = SPI_execute(query, false, 0);

	hl_spi_check(rc, expected, query);
}

Datum
headlessly_capture(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char		relkind;
	char	   *noun;
	char	   *id_column;
	char	   *qualified;
	AttrNumber	attno;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table and id column to capture must not be NULL")));
	relid = PG_GETARG_OID(0);
	id_column = NameStr(*PG_GETARG_NAME(2));

	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ordinary table", get_rel_name(relid)),
				 errdetail("Only ordinary tables can be captured; for a partitioned table, capture each partition.")));
	if (get_rel_namespace(relid) == get_namespace_oid(HL_SCHEMA, false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("the tables of the %s schema cannot be captured", HL_SCHEMA)));

	attno = get_attnum(relid, id_column);
	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"%s\"", get_rel_name(relid), id_column),
				 errhint("Name the column that identifies a row: headlessly.capture(rel, noun, id_column).")));

	if (PG_ARGISNULL(1))
	{
		noun = noun_for_table(get_rel_name(relid));
		if (!is_noun(noun))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot make a noun of table name \"%s\"", get_rel_name(relid)),
					 errhint("Pass one: headlessly.capture(rel, noun => 'Contact').")));
	}
	else
	{
		noun = text_to_cstring(PG_GETARG_TEXT_PP(1));
		if (!is_noun(noun))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid noun \"%s\"", noun),
					 errdetail("A noun is a capital letter followed by letters and digits, like \"Contact\".")));
	}

	if (has_trigger(relid, CAPTURE_TRIGGER_NAME))
	{
		ereport(NOTICE,
				(errmsg("table \"%s\" is already captured, skipping", get_rel_name(relid)),
				 errhint("Call headlessly.uncapture() first to capture it with another noun or id column.")));
		PG_RETURN_VOID();
	}

	qualified = qualified_name(relid);
	hl_spi_connect();

	{
		char	   *query = psprintf("SELECT 1 FROM %s WHERE %s IS NULL LIMIT 1",
									 qualified, quote_identifier(id_column));

		execute(query, SPI_OK_SELECT);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_HL_INVALID_EVENT),
					 errmsg("table \"%s\" has rows without %s", get_rel_name(relid), id_column),
					 errdetail("Captured rows become entities, and their id is the target.")));
	}

	/* rows that exist now become entities first, or catch up if they are */
	{
		Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID};
		Datum		args[4];
		char	   *query;
		int			rc;

		query = psprintf(
						 "WITH r AS ("
						 "  SELECT t.%1$s::pg_catalog.text AS target,"
						 "         COALESCE((SELECT pg_catalog.jsonb_object_agg(c.key, c.value)"
						 "            FROM pg_catalog.jsonb_each(pg_catalog.to_jsonb(t)) c"
						 "           WHERE pg_catalog.jsonb_typeof(c.value) OPERATOR(pg_catalog.<>) 'null'), '{}') AS row"
						 "    FROM %2$s t)"
						 " SELECT pg_catalog.count(" HL_SCHEMA ".events_append("
						 "          $1 OPERATOR(pg_catalog.||) CASE WHEN s.state IS NULL THEN '.Created' ELSE '.Updated' END,"
						 "          r.target,"
						 "          CASE WHEN s.state IS NULL THEN r.row"
						 "               ELSE r.row OPERATOR(pg_catalog.||) COALESCE(("
						 "                      SELECT pg_catalog.jsonb_object_agg(k, 'null'::pg_catalog.jsonb)"
						 "                        FROM pg_catalog.jsonb_object_keys(s.state) k"
						 "                       WHERE NOT r.row OPERATOR(pg_catalog.?) k), '{}') END,"
						 "          actor => $2, source => 'capture', source_type => 'internal',"
						 "          metadata => $4))"
						 "   FROM r LEFT JOIN " HL_SCHEMA ".entities s"
						 "     ON s.tenant OPERATOR(pg_catalog.=) $3 AND s.target OPERATOR(pg_catalog.=) r.target"
						 "  WHERE s.state IS DISTINCT FROM r.row",
						 quote_identifier(id_column), qualified);
		args[0] = CStringGetTextDatum(noun);
		args[1] = CStringGetTextDatum(capture_actor());
		args[2] = CStringGetTextDatum(hl_current_tenant());
		args[3] = DirectFunctionCall1(jsonb_in,
									  CStringGetDatum(psprintf("{\"table\": \"%s.%s\", \"operation\": \"CAPTURE\"}",
															   get_namespace_name(get_rel_namespace(relid)),
															   get_rel_name(relid))));
		rc = SPI_execute_with_args(query, 4, argtypes, args, NULL, false, 0);
		hl_spi_check(rc, SPI_OK_SELECT, query);
	}

	execute(psprintf("CREATE TRIGGER " CAPTURE_TRIGGER_NAME
					 " AFTER INSERT OR UPDATE OR DELETE ON %s"
					 " FOR EACH ROW EXECUTE FUNCTION " HL_SCHEMA ".capture_trigger(%s, %s)",
					 qualified, quote_literal_cstr(noun), quote_literal_cstr(id_column)),
			SPI_OK_UTILITY);
	execute(psprintf("CREATE TRIGGER " CAPTURE_TRUNCATE_TRIGGER_NAME
					 " BEFORE TRUNCATE ON %s"
					 " FOR EACH STATEMENT EXECUTE FUNCTION " HL_SCHEMA ".capture_trigger(%s, %s)",
					 qualified, quote_literal_cstr(noun), quote_literal_cstr(id_column)),
			SPI_OK_UTILITY);

	SPI_finish();
	PG_RETURN_VOID();
}

Datum
headlessly_uncapture(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *qualified;

	if (!has_trigger(relid, CAPTURE_TRIGGER_NAME))
		PG_RETURN_BOOL(false);

	qualified = qualified_name(relid);
	hl_spi_connect();
	execute(psprintf("DROP TRIGGER " CAPTURE_TRIGGER_NAME " ON %s", qualified), SPI_OK_UTILITY);
	execute(psprintf("DROP TRIGGER IF EXISTS " CAPTURE_TRUNCATE_TRIGGER_NAME " ON %s", qualified),
			SPI_OK_UTILITY);
	SPI_finish();
	PG_RETURN_BOOL(true);
}
