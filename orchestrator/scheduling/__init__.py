"""Ray scheduling: warm worker groups, trial dispatch, retries."""
