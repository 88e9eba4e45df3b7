// `kobold configtest` for the job runner: loading the task modules checks every task
// definition, its schedule (a malformed cron expression, an unknown time zone) included.

import { jobsEnabled, taskModulesBaseDir, type JobsConfig } from './config.js';
import { loadTaskModules } from './registry.js';

/** Throws KOBOLD_ERR_JOBS_TASK_LOAD naming the module and the problem; returns a summary line, or null when jobs are off. */
export async function checkJobsConfig(config: { jobs: JobsConfig; configFile: string | null }): Promise<string | null> {
  if (!jobsEnabled(config.jobs)) return null;
  const tasks = await loadTaskModules(config.jobs.taskModules, taskModulesBaseDir(config.configFile));
  const names = [...tasks.values()].map((task) => (task.schedule ? `${task.name} (${task.schedule.cron}${task.schedule.timezone ? ` ${task.schedule.timezone}` : ''})` : task.name));
  return `tasks: ${names.join(', ')}`;
}
