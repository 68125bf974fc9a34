"""Communications: messages to recipient groups, recorded on the incident, delivered by a job."""
