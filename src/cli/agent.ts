import type { Command } from 'commander';
export function registerAgent(_program: Command): void {}
