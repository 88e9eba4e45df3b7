// Loads task modules once and collects the tasks they export. Both sides of the wire
// load the same modules: the dispatcher for the argument schemas and options, the task
// workers to run the code. TypeScript modules go through tsx, compiled ones load natively.

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { KoboldError, describeError } from '../errors.js';
import { isTaskDefinition, type TaskDefinition } from './task.js';

export type TaskRegistry = ReadonlyMap<string, TaskDefinition>;

/** Imports each module (a path, relative to `baseDir`) and indexes its exported tasks by name. */
export async function loadTaskModules(modules: readonly string[], baseDir = process.cwd()): Promise<TaskRegistry> {
  const tasks = new Map<string, TaskDefinition>();
  for (const module of modules) {
    const path = isAbsolute(module) ? module : resolve(baseDir, module);
    let exports: Record<string, unknown>;
    try {
      exports = /\.[mc]?ts$/.test(path) ? await tsImport(pathToFileURL(path).href, import.meta.url) : await import(pathToFileURL(path).href);
    } catch (error) {
      throw new KoboldError('KOBOLD_ERR_JOBS_TASK_LOAD', { module, reason: describeError(error) }, { cause: error });
    }
    const found = Object.values(exports).filter(isTaskDefinition);
    if (found.length === 0) {
      throw new KoboldError('KOBOLD_ERR_JOBS_TASK_LOAD', { module, reason: 'it exports no task (use defineTask)' });
    }
    for (const task of found) addTask(tasks, task, module);
  }
  return tasks;
}

/** A registry from definitions already in hand (code that defines tasks inline, tests). */
export function taskRegistry(definitions: readonly TaskDefinition[]): TaskRegistry {
  const tasks = new Map<string, TaskDefinition>();
  for (const task of definitions) addTask(tasks, task, '(inline)');
  return tasks;
}

function addTask(tasks: Map<string, TaskDefinition>, task: TaskDefinition, module: string): void {
  if (tasks.has(task.name) && tasks.get(task.name) !== task) {
    throw new KoboldError('KOBOLD_ERR_JOBS_TASK_LOAD', { module, reason: `a second task is named "${task.name}"` });
  }
  tasks.set(task.name, task);
}
