/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  The trigger protocol our trigger functions share: each one checks
 *	  that the trigger manager called it, and fired it as it was written
 *	  for, before it reads the trigger data.
 *
 * A function created as a trigger can be attached by its owner to another
 * table, timing or level (or called by C code); it must refuse that with
 * 39P01 rather than read a tuple that is not there.
 *
 *-------------------------------------------------------------------------
 */
#include "common/common.h"

#include "commands/trigger.h"
#include "lib/stringinfo.h"

/* "BEFORE INSERT FOR EACH ROW", "AFTER ... FOR EACH STATEMENT", "BEFORE" */
static const char *
firing_description(int firing)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (firing & HL_FIRED_BEFORE)
		appendStringInfoString(&buf, " BEFORE");
	else if (firing & HL_FIRED_AFTER)
		appendStringInfoString(&buf, " AFTER");
	if ((firing & HL_FIRED_INSERT) && (firing & HL_FIRED_UPDATE))
		appendStringInfoString(&buf, " INSERT OR UPDATE");
	else if (firing & HL_FIRED_INSERT)
		appendStringInfoString(&buf, " INSERT");
	else if (firing & HL_FIRED_UPDATE)
		appendStringInfoString(&buf, " UPDATE");
	else if (firing & (HL_FIRED_ROW | HL_FIRED_STATEMENT))
		appendStringInfoString(&buf, " ...");
	if (firing & HL_FIRED_ROW)
		appendStringInfoString(&buf, " FOR EACH ROW");
	else if (firing & HL_FIRED_STATEMENT)
		appendStringInfoString(&buf, " FOR EACH STATEMENT");
	return buf.data + 1;
}

/*
 * The trigger data of a call of trigger function funcname, or 39P01 when
 * the trigger manager did not make the call, or fired it otherwise than
 * firing says (HL_FIRED_* bits; a group without a bit set is not checked,
 * so 0 checks only the caller).
 */
TriggerData *
hl_trigger_data(FunctionCallInfo fcinfo, const char *funcname, int firing)
{
	TriggerData *trigdata;
	TriggerEvent event;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s was not called by the trigger manager", funcname)));
	trigdata = (TriggerData *) fcinfo->context;
	event = trigdata->tg_event;

	if (((firing & HL_FIRED_BEFORE) && !TRIGGER_FIRED_BEFORE(event)) ||
		((firing & HL_FIRED_AFTER) && !TRIGGER_FIRED_AFTER(event)) ||
		((firing & HL_FIRED_ROW) && !TRIGGER_FIRED_FOR_ROW(event)) ||
		((firing & HL_FIRED_STATEMENT) && !TRIGGER_FIRED_FOR_STATEMENT(event)) ||
		((firing & (HL_FIRED_INSERT | HL_FIRED_UPDATE)) &&
		 !((firing & HL_FIRED_INSERT) && TRIGGER_FIRED_BY_INSERT(event)) &&
		 !((firing & HL_FIRED_UPDATE) && TRIGGER_FIRED_BY_UPDATE(event))))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired %s", funcname, firing_description(firing))));
	return trigdata;
}
