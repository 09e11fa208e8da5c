"""Birthday programs: a gift placed every year, a set time ahead, for the local send time
on the day; and the CSV imports (programs, one-off scheduled sends) ops run by hand.

- :mod:`.models`: the program row and one placement row per program and year;
- :mod:`.services`: create, pause, resume, end, change, and :func:`~.services.place_due`,
  which beat runs to place what is due (catching up at most a setting's worth of lateness);
- :mod:`.rows`: one CSV row to a validated program or order (the order schema's rules);
- :mod:`.imports`: a whole CSV file, every row validated before anything is written.
"""
