"""Errors the CLI shows as one clear line (and a non-zero exit) instead of a traceback.

UserError            bad input or a state the user can fix; exit 1
  AwsError           an AWS call failed (access denied, not found, throttled, no credentials)
  EnvironmentUnfit   this machine cannot run the local simulation (no namespaces, wrong arch)
  SimulationInterrupted, StudyInterrupted
                     Ctrl-C or SIGTERM stopped a run after it cleaned up; exit 130 (here, not
                     in cli/: the live displays in reporting/ that catch the interrupt raise them)
"""

from __future__ import annotations


class UserError(Exception):
    """A failure to report in one line, without a traceback."""

    exit_code = 1


class AwsError(UserError):
    """An AWS API call failed; the message names the operation and AWS's error code."""


class EnvironmentUnfit(UserError):
    """The local simulation cannot run on this machine; the message says why and what to do."""


class SimulationInterrupted(UserError):
    """Ctrl-C or SIGTERM stopped the run; every environment was shut down first."""

    exit_code = 130


class StudyInterrupted(UserError):
    """Ctrl-C or SIGTERM stopped the study; the configuration was restored, the state kept."""

    exit_code = 130
