import { Option, type Command } from 'commander';
import { parseSetting } from '../config/load.js';
import { SETTINGS, envName, flagName, type Setting } from '../config/settings.js';

/** One commander option per daemon setting (no defaults here: they live in the config schema). */
function optionFor(setting: Setting): Option {
  const flag = `--${flagName(setting)}`;
  const help = `${setting.description} [env ${envName(setting.path)}]`;
  const source = `flag ${flag}`;
  switch (setting.type) {
    case 'list':
      return new Option(`${flag} <values>`, `${help} (repeatable, comma-separated)`).argParser((value: string, previous: unknown) => [
        ...((previous as string[] | undefined) ?? []),
        ...(parseSetting(setting, value, source) as string[]),
      ]);
    case 'boolean':
      return new Option(`${flag} [bool]`, help).argParser((value: string) => parseSetting(setting, value, source));
    default: {
      const option = new Option(`${flag} <value>`, help).argParser((value: string) => parseSetting(setting, value, source));
      return setting.choices ? option.choices(setting.choices).argParser((value: string) => value) : option;
    }
  }
}

export function addSettingOptions(command: Command): Command {
  command.option('--config <file>', 'YAML config file (precedence: flags > POLICYD_* environment > file > defaults)');
  for (const setting of SETTINGS) command.addOption(optionFor(setting));
  return command;
}

/** The flag values given, by setting path. */
export function settingFlags(command: Command): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const option = command.options.find((o) => o.long === `--${flagName(setting)}`)!;
    const value = command.getOptionValue(option.attributeName());
    if (value !== undefined) values[setting.path] = value;
  }
  return values;
}
